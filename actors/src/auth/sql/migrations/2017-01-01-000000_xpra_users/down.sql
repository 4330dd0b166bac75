DROP INDEX users_username;
DROP TABLE users;
