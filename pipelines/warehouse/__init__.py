"""All SQL access: connections, migrations, writes, aggregates, retention and reads."""
