-- Which degradations an answer got (maintenance, fallback_reply, ...), so that a reload shows it
-- and such answers stay out of the model's context; NULL when none.
ALTER TABLE messages ADD COLUMN degraded VARCHAR(200);
