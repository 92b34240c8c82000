"""Only the optional C extension lives here; everything else is in pyproject.toml.

`bns_resolver.answers._native` answers the UDP reader's plain queries from the compiled store
without the interpreter's per-query cost. It is optional: without a C compiler and the Python
headers the build skips it (setuptools' `optional`) and the same answers come from Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bns_resolver.answers._native",
            sources=["bns_resolver/answers/_native.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
