-- The first statement of every API transaction (which is READ ONLY): a statement timeout no
-- longer than the caller's deadline, the role the API reads as ('none': the login role), and
-- no JIT compilation (a read the planner costs high, such as the edges of a ListFlights
-- window, spent 60 ms compiling to save less). All local to the transaction, so they hold
-- behind transaction-pooling proxies too.
SELECT set_config('statement_timeout', %(timeout)s, true),
       set_config('role', %(role)s, true),
       set_config('jit', 'off', true)
