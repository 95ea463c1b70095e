"""The write stage: idempotency keys, routing writes to their owner, the audit of writes."""
