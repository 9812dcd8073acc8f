"""YAML in and out as bulwark reads it (YAML 1.2 booleans): PyYAML's YAML 1.1 resolver would turn
keys such as `on:` (fallback.on) into True and write them back as `true:`."""

import re

import yaml


class Loader(yaml.SafeLoader):
    pass


# Drop the YAML 1.1 bool resolver (yes/no/on/off/...) and keep only true/false.
Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                             list("tTfF"))


class Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    # Quote strings a YAML 1.1 reader would take for booleans, so any reader gets a string.
    if value.lower() in ("on", "off", "yes", "no", "y", "n"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return dumper.represent_str(value)


Dumper.add_representer(str, _str)


def load(stream):
    return yaml.load(stream, Loader=Loader)


def dump(data, stream=None):
    return yaml.dump(data, stream, Dumper=Dumper, sort_keys=False, allow_unicode=True)
