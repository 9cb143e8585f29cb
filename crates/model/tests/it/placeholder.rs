//! Integration tests of the server model.
