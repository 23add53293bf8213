-- Which gateway generates a streaming answer, and until when it vouches for it. The owner renews
-- the lease every few seconds; any replica fails a streaming answer whose lease ran out (its
-- gateway died), so that many gateways can share one database. NULL: written before leases.
ALTER TABLE messages ADD COLUMN owner_instance VARCHAR(100);
ALTER TABLE messages ADD COLUMN lease_until TIMESTAMP WITH TIME ZONE;
CREATE INDEX messages_by_status_lease ON messages (status, lease_until);
