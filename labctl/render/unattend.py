"""Render a VM's answer file (unattend.xml) from templates/unattend/<vm.template>.xml.j2."""

from __future__ import annotations

import jinja2
from pydantic import SecretStr

from labctl.errors import TemplateError
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.lab.paths import unattend_template_name
from labctl.render.check import REDACTED, check_unattend
from labctl.render.env import environment_for
from labctl.render.password import encode_unattend_password

__all__ = ["REDACTED", "check_lab_templates", "check_unattend", "render_unattend"]


def render_unattend(lab: ResolvedLab, vm: ResolvedVm | str, password: SecretStr | str | None = None, *,
                    redacted: bool = False, env: jinja2.Environment | None = None, check: bool = True) -> str:
    """The answer file for ``vm``. ``redacted=True`` renders a display copy (``labctl render``) whose
    password value is "*** redacted ***" and needs no password. Raises TemplateError (naming the template,
    the VM and the variable) on an undefined variable, a template error, or, with ``check``, an output that
    breaks Windows' rules."""
    the_vm = lab.vm(vm) if isinstance(vm, str) else vm
    template_name = unattend_template_name(the_vm.template)
    if redacted:
        admin_password = REDACTED
    elif password is None:
        raise TemplateError("rendering an answer file needs the guest Administrator password",
                            template=template_name, vm=the_vm.name,
                            hint="pass the password, or render with redacted=True for display")
    else:
        admin_password = encode_unattend_password(password, "AdministratorPassword")
    environment = env if env is not None else environment_for(lab.template_dirs)
    context = {"vm": the_vm, "lab": lab, "vars": the_vm.vars, "admin_password": admin_password}
    try:
        text = environment.get_template(template_name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name} not found (searched {', '.join(lab.template_dirs)})",
                            template=template_name, vm=the_vm.name) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or template_name}:{exc.lineno}: template syntax error: {exc.message}",
                            template=template_name, vm=the_vm.name) from None
    except jinja2.UndefinedError as exc:
        # Jinja says "'dict object' has no attribute 'x'" or "'x' is undefined": both name the variable.
        raise TemplateError(f"{template_name}: undefined variable for VM {the_vm.name}: {exc.message}",
                            template=template_name, vm=the_vm.name,
                            hint="define it under vars: in the lab file (defaults, group or VM)") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template_name}: {exc.message}", template=template_name, vm=the_vm.name) from None
    if check:
        problems = check_unattend(text, allow_redacted=redacted)
        if problems:
            raise TemplateError(f"{template_name} rendered an invalid answer file for VM {the_vm.name}:\n  "
                                + "\n  ".join(problems), template=template_name, vm=the_vm.name)
    return text


def check_lab_templates(lab: ResolvedLab) -> list[TemplateError]:
    """Render every VM's answer file (redacted, so no password is needed) and return the errors: what
    ``labctl validate`` adds to the lab-file problems so template mistakes show before ``up``."""
    errors: list[TemplateError] = []
    for vm in lab.vms:
        try:
            render_unattend(lab, vm, redacted=True)
        except TemplateError as exc:
            errors.append(exc)
    return errors
