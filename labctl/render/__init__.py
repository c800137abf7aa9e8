"""Rendering: the Jinja2 environment, unattend answer files and their checker, password encoding. Pure."""

from labctl.render.check import REDACTED, check_unattend
from labctl.render.env import environment_for, make_environment
from labctl.render.password import decode_unattend_password, encode_unattend_password
from labctl.render.unattend import check_lab_templates, render_unattend

__all__ = [
    "REDACTED",
    "check_lab_templates",
    "check_unattend",
    "decode_unattend_password",
    "encode_unattend_password",
    "environment_for",
    "make_environment",
    "render_unattend",
]
