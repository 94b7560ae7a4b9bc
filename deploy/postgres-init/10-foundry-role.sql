-- The application role: neither superuser nor BYPASSRLS, so Row-Level Security binds it.
CREATE ROLE foundry LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB PASSWORD 'foundry';
CREATE DATABASE foundry OWNER foundry;
