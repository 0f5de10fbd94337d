"""Storage: peewee models, the database connection and migrations."""
