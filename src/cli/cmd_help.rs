//! `help [TOPIC]`: a command's help, or a topic.

use clap::Args;

use super::{help_topics, print_stdout, EXIT_ERROR, EXIT_SUCCESS};

/// `help [TOPIC]`
#[derive(Debug, Args)]
pub struct HelpArgs {
    /// a command or a topic (patterns, placeholders, compression)
    #[arg(value_name = "TOPIC")]
    pub topic: Option<String>,
    /// only print the command's description (its epilog)
    #[arg(long = "epilog-only")]
    pub epilog_only: bool,
    /// only print the command's usage and options
    #[arg(long = "usage-only")]
    pub usage_only: bool,
}

/// `help [TOPIC] [--epilog-only | --usage-only]`, as borg's: the whole help, a topic, or a
/// command's help (only its description, or only its usage and options). An unknown topic
/// is an error that lists what there is.
pub fn run(a: &HelpArgs) -> i32 {
    let mut cli = super::command_tree();
    cli.build();
    let Some(topic) = a.topic.as_deref() else {
        print_stdout(&cli.render_long_help().to_string());
        return EXIT_SUCCESS;
    };
    if let Some(text) = help_topics::topic(topic) {
        print_stdout(text);
        return EXIT_SUCCESS;
    }
    let commands: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let Some(cmd) = cli.find_subcommand_mut(topic) else {
        let mut names = commands;
        names.sort();
        eprintln!(
            "{}
hoard: error: No help available on {topic}.
Try one of the following:
    Commands: {}
    Topics: {}",
            super::command_tree().render_usage(),
            names.join(", "),
            help_topics::TOPICS.join(", ")
        );
        return EXIT_ERROR;
    };
    if a.epilog_only {
        // the description: the long text when the command has one, and what follows the
        // options
        let about = cmd
            .get_long_about()
            .or_else(|| cmd.get_about())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let after = cmd
            .get_after_long_help()
            .or_else(|| cmd.get_after_help())
            .map(|t| t.to_string())
            .unwrap_or_default();
        print_stdout([about, after].join("\n\n").trim());
    } else if a.usage_only {
        // the short help: usage, the one-line description and the options
        print_stdout(&cmd.render_help().to_string());
    } else {
        print_stdout(&cmd.render_long_help().to_string());
    }
    EXIT_SUCCESS
}
