//! One file per command: the logic on top of the library layers. Nothing here prints.
