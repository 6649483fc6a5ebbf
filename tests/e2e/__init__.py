"""End-to-end tests: real client libraries against local emulators."""
