//! The borg-compatible command line: clap definitions, output formatting, exit codes.
