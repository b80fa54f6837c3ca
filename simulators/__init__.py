"""Local HTTP servers that implement each vendor's API from its document, for tests, the demo and users."""
