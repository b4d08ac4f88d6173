"""GitHub through PyGithub (the App's installation tokens) and GitHub's OAuth endpoints."""
