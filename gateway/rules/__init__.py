"""Business rules: pure functions over canonical records, no I/O. Entitlements, how an
invoice's postings compare with it, customer health; the credit policy and reconciliation
severity join them. The data stage reads, these decide, the resolvers show."""
