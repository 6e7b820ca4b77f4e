"""The operator console: a framework-free page (static files here) over the admin API, and its login session."""
