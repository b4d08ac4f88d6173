"""The single DynamoDB table, through PynamoDB. Key formats live only in the entity classes."""
