-- The first statement of every API transaction (which is READ ONLY): a statement timeout no
-- longer than the caller's deadline, and the role the API reads as ('none': the login role).
-- Both are local to the transaction, so they hold behind transaction-pooling proxies too.
SELECT set_config('statement_timeout', %(timeout)s, true),
       set_config('role', %(role)s, true)
