//! Templates to files: builds the template context from the resolved config, renders each role file
//! with escaping that fits its format, and writes it atomically. Starts nothing.
