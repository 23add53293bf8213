-- Operators' degradation switches, shared by every gateway replica through this table.
CREATE TABLE switches (
    kind        VARCHAR(32)              NOT NULL,
    -- The client-facing model a per-model switch applies to; '' for a global switch.
    model       VARCHAR(200)             NOT NULL,
    enabled     BOOLEAN                  NOT NULL,
    message     VARCHAR(2000),
    int_value   INTEGER,
    target      VARCHAR(200),
    reason      VARCHAR(500),
    expires_at  TIMESTAMP WITH TIME ZONE,
    updated_by  VARCHAR(200)             NOT NULL,
    updated_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (kind, model)
);

-- Which degradations a generation got (maintenance, fallback_reply, ...); NULL when none.
ALTER TABLE usage_records ADD COLUMN degraded VARCHAR(200);
