//! The message text of a `tracing` event: shared by the CLI's log layer and the server's
//! stderr log stream (the server must not import the CLI, so it lives down here).

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

/// The `message` field of `event` (empty if it has none).
pub fn message(event: &tracing::Event<'_>) -> String {
    let mut visitor = MessageVisitor(String::new());
    event.record(&mut visitor);
    visitor.0
}
