"""Adapters: implementations of the domain's ports over AWS, Stripe, GitHub and the runtimes."""
