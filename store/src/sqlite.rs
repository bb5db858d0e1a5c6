//! SQLite adapter: see the module docs once written.
