SELECT drop_chunks(%(relation)s::regclass, older_than => %(horizon)s::timestamptz)::text
