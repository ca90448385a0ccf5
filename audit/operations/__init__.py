"""Operations on the audit record: sealing and verification (tamper
evidence) and retention (purge, archive, legal holds). The management
commands in ``audit/management/commands`` are thin wrappers over these."""
