"""In-memory fakes of the project's own interfaces, for the unit tier."""
