"""The domain layer: entities, services, errors and ports. It imports nothing above it (no boto3,
stripe, github, chalice, pynamodb)."""
