"""Events in: signed webhooks from the systems that send them (billing, support), proved,
stored in the inbox and the outbox in one transaction, turned into canonical CloudEvents,
de-duplicated by the source's event id, and processed (the entity cache forgets what they
name). ``canonical`` is the envelope, ``intake`` the pipeline, ``http`` the endpoint."""
