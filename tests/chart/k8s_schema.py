"""Strict validation of rendered manifests against the Kubernetes API's own models.

The models are those of Debian's python3-kubernetes (the official client, generated
from the Kubernetes 1.22 OpenAPI schema): every field name must exist in its object's
schema (unknown fields are errors, as with `kubectl apply --validate=strict`), every
value must have the schema's type, required fields must be present and enumerations
must hold (the models' own checks). Fields added to the API after 1.22 that the chart
uses are declared in LATER_FIELDS, each with the Kubernetes release that added it;
apiVersions that went GA after 1.22 map to the beta models of the same schema.

Custom resources (Prometheus Operator, cert-manager, KEDA) have no models here: their
metadata is validated as ObjectMeta and their spec against the small structural
schemas in CUSTOM_SPECS (the fields this chart renders, from each project's CRD).
"""

import datetime
import re

import kubernetes.client as k8s

# (apiVersion, kind) -> model class name.
_GROUP_PREFIX = {
    "v1": "V1",
    "apps/v1": "V1",
    "policy/v1": "V1",
    "networking.k8s.io/v1": "V1",
    "batch/v1": "V1",
    "rbac.authorization.k8s.io/v1": "V1",
    # autoscaling/v2 (GA in 1.23) has v2beta2's schema.
    "autoscaling/v2": "V2beta2",
}

# Fields that came after Kubernetes 1.22: (model, json name) -> model type string.
LATER_FIELDS = {
    # gRPC probes: alpha 1.23, beta 1.24, GA 1.27.
    ("V1Probe", "grpc"): "_GRPCAction",
}

# Models of the later fields, as {json name: (type string, required)}.
_LATER_MODELS = {
    "_GRPCAction": {"port": ("int", True), "service": ("str", False)},
}

# Custom resources: kind -> {json name: type string} for spec, "*" meaning any value.
_ANY = "*"
CUSTOM_SPECS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "jobLabel": "str",
        "selector": "V1LabelSelector",
        "namespaceSelector": {"matchNames": "list[str]", "any": "bool"},
        "endpoints": [{
            "port": "str", "path": "str", "interval": "str", "scheme": "str",
            "scrapeTimeout": "str", "honorLabels": "bool",
        }],
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "groups": [{
            "name": "str", "interval": "str",
            "rules": [{
                "alert": "str", "record": "str", "expr": "str", "for": "str",
                "labels": "dict(str, str)", "annotations": "dict(str, str)",
            }],
        }],
    },
    ("cert-manager.io/v1", "Certificate"): {
        "secretName": "str", "commonName": "str", "dnsNames": "list[str]",
        "ipAddresses": "list[str]", "duration": "str", "renewBefore": "str",
        "usages": "list[str]", "isCA": "bool",
        "issuerRef": {"name": "str", "kind": "str", "group": "str"},
        "privateKey": {"algorithm": "str", "size": "int", "rotationPolicy": "str",
                       "encoding": "str"},
    },
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "scaleTargetRef": {"name": "str", "kind": "str", "apiVersion": "str",
                           "envSourceContainerName": "str"},
        "minReplicaCount": "int", "maxReplicaCount": "int", "pollingInterval": "int",
        "cooldownPeriod": "int", "idleReplicaCount": "int",
        "triggers": [{"type": "str", "name": "str",
                      "metadata": "dict(str, str)", "authenticationRef": {"name": "str"}}],
    },
}

# Values Kubernetes reads as resource.Quantity: a string or a number.
_QUANTITY_MODELS = {"V1ResourceRequirements", "V1EmptyDirVolumeSource",
                    "V1PersistentVolumeClaimSpec"}

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\((\w+), (.+)\)$")


class SchemaError(Exception):
    pass


def validate(obj):
    """Raises SchemaError naming the path of the first problem in one manifest."""
    if not isinstance(obj, dict):
        raise SchemaError("a manifest must be a mapping")
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if not api or not kind:
        raise SchemaError("apiVersion and kind are required")
    if (api, kind) in CUSTOM_SPECS:
        _check_custom(obj, CUSTOM_SPECS[(api, kind)], f"{kind}")
        return
    prefix = _GROUP_PREFIX.get(api)
    model = getattr(k8s, f"{prefix}{kind}", None) if prefix else None
    if model is None:
        raise SchemaError(f"{api} {kind}: no schema known; add it to k8s_schema.py")
    _build(obj, model.__name__, kind)


def _build(value, type_name, path):
    """Converts value to type_name as the API server would, or raises SchemaError."""
    if type_name in ("object", _ANY):
        return value
    if type_name == "str":
        if not isinstance(value, str):
            raise SchemaError(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{path}: expected an integer, got {value!r}")
        return value
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{path}: expected a number, got {value!r}")
        return value
    if type_name == "bool":
        if not isinstance(value, bool):
            raise SchemaError(f"{path}: expected true or false, got {value!r}")
        return value
    if type_name == "datetime":
        if not isinstance(value, (str, datetime.datetime)):
            raise SchemaError(f"{path}: expected a timestamp, got {value!r}")
        return value
    m = _LIST.match(type_name)
    if m:
        if not isinstance(value, list):
            raise SchemaError(f"{path}: expected a list, got {value!r}")
        return [_build(v, m.group(1), f"{path}[{i}]") for i, v in enumerate(value)]
    m = _DICT.match(type_name)
    if m:
        if not isinstance(value, dict):
            raise SchemaError(f"{path}: expected a mapping, got {value!r}")
        return {k: _build(v, m.group(2), f"{path}.{k}") for k, v in value.items()}
    if type_name in _LATER_MODELS:
        return _build_plain(value, _LATER_MODELS[type_name], path)
    return _build_model(value, type_name, path)


def _build_plain(value, fields, path):
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: expected a mapping, got {value!r}")
    for key in value:
        if key not in fields:
            raise SchemaError(f"{path}: unknown field {key!r}")
    for key, (type_name, required) in fields.items():
        if key in value:
            _build(value[key], type_name, f"{path}.{key}")
        elif required:
            raise SchemaError(f"{path}: missing required field {key!r}")
    return value


def _build_model(value, type_name, path):
    model = getattr(k8s, type_name, None)
    if model is None:
        raise SchemaError(f"{path}: no model {type_name}")
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: expected a {type_name} mapping, got {value!r}")
    by_json = {j: attr for attr, j in model.attribute_map.items()}
    kwargs = {}
    for key, item in value.items():
        later = LATER_FIELDS.get((type_name, key))
        if later is not None:
            _build(item, later, f"{path}.{key}")
            continue
        if key not in by_json:
            raise SchemaError(f"{path}: unknown field {key!r} in {type_name}")
        attr = by_json[key]
        field_type = model.openapi_types[attr]
        if type_name in _QUANTITY_MODELS and field_type == "dict(str, str)":
            field_type = "dict(str, object)"
        if type_name == "V1EmptyDirVolumeSource" and attr == "size_limit":
            field_type = "object"
        kwargs[attr] = _build(item, field_type, f"{path}.{key}")
    try:
        return model(**kwargs)
    except ValueError as e:
        raise SchemaError(f"{path}: {e}") from None


def _check_custom(obj, spec_schema, path):
    for key in obj:
        if key not in ("apiVersion", "kind", "metadata", "spec"):
            raise SchemaError(f"{path}: unknown field {key!r}")
    _build(obj.get("metadata", {}), "V1ObjectMeta", f"{path}.metadata")
    _check_plain(obj.get("spec", {}), spec_schema, f"{path}.spec")


def _check_plain(value, schema, path):
    if isinstance(schema, str):
        _build(value, schema, path)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise SchemaError(f"{path}: expected a list, got {value!r}")
        for i, v in enumerate(value):
            _check_plain(v, schema[0], f"{path}[{i}]")
    else:
        if not isinstance(value, dict):
            raise SchemaError(f"{path}: expected a mapping, got {value!r}")
        for key, v in value.items():
            if key not in schema:
                raise SchemaError(f"{path}: unknown field {key!r}")
            _check_plain(v, schema[key], f"{path}.{key}")
