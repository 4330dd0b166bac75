-- xpra's `users` table, exactly as `python3 -m xpra.auth.sqlite FILE create` makes it, so that
-- xpra's own tool and authenticator read databases made by xgate (and xgate reads theirs).
CREATE TABLE users (username VARCHAR(255) NOT NULL, password VARCHAR(255), uid VARCHAR(63), gid VARCHAR(63), displays VARCHAR(8191), env_options VARCHAR(8191), session_options VARCHAR(8191));
-- Not in xpra's schema, and invisible to it: lookups by name stay fast with many users.
CREATE INDEX users_username ON users (username);
