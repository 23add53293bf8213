-- A key's share when a model is full (fair admission, weighted); NULL means the default weight 1,
-- so every existing key keeps an equal share.
ALTER TABLE api_keys ADD COLUMN weight DOUBLE PRECISION;
