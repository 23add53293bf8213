-- Listed key prefixes show at most 'sk-' and 4 more characters (ApiKeyService.visiblePrefix): keys
-- created before kept 10. Generated keys are 46 characters, so 7 is under a quarter of them; the
-- bootstrap admin's prefix is rewritten from ADMIN_API_KEY at every start.
UPDATE api_keys SET key_prefix = SUBSTRING(key_prefix, 1, 7)
  WHERE key_prefix LIKE 'sk-%' AND LENGTH(key_prefix) > 7 AND id <> 'bootstrap-admin';
