"""Strict patterns for every value that reaches a Dockerfile, a docker argument or a file name.

Nothing from a spec or catalog is rendered or passed on unless it matches one of these, so a
version string cannot smuggle in a shell or Dockerfile line.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
VERSION = r"^[0-9][0-9A-Za-z.+]{0,39}$"
PIP_REQUIREMENT = (
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9_,-]+\])?"
    r"((==|>=|<=|<|>|~=|!=)[0-9A-Za-z.*+]+(,(==|>=|<=|<|>|~=|!=)[0-9A-Za-z.*+]+)*)?$"
)
APT_PACKAGE = r"^[a-z0-9][a-z0-9.+-]{1,63}$"
ENV_KEY = r"^[A-Z_][A-Z0-9_]{0,63}$"
ENV_VALUE = r"^[A-Za-z0-9_./:=,+-]{0,1000}$"  # long enough for a library path
IMAGE_REF = r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9._-]{1,64})?$"
HTTPS_URL = r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~-]+)*/?$"
CPUSET = r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$"
MEMORY = r"^[0-9]+[kmg]?$"
OPTION_VALUE = r"^[A-Za-z0-9_.-]{1,40}$"

Name = Annotated[str, StringConstraints(pattern=NAME)]
Version = Annotated[str, StringConstraints(pattern=VERSION)]
PipRequirement = Annotated[str, StringConstraints(pattern=PIP_REQUIREMENT)]
AptPackage = Annotated[str, StringConstraints(pattern=APT_PACKAGE)]
EnvKey = Annotated[str, StringConstraints(pattern=ENV_KEY)]
EnvValue = Annotated[str, StringConstraints(pattern=ENV_VALUE)]
ImageRef = Annotated[str, StringConstraints(pattern=IMAGE_REF)]
HttpsUrl = Annotated[str, StringConstraints(pattern=HTTPS_URL)]
Cpuset = Annotated[str, StringConstraints(pattern=CPUSET)]
Memory = Annotated[str, StringConstraints(pattern=MEMORY)]


def is_option_value(value: str) -> bool:
    return re.fullmatch(OPTION_VALUE, value) is not None
