"""Auth service: accounts in Postgres, argon2id passwords, sessions in Redis, signed JWTs."""
