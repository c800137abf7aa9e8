"""Demos that run in a lab's guests and return typed results for the CLI to print (plain Python)."""
