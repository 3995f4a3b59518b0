"""Generate caveql/data/emannotationschemas.json: the schema service's ``types_all`` answer.

emannotationschemas pins numpy<2, which caveql's pyarrow refuses, so it cannot be a dependency.
Run this once in a side venv and commit the JSON (see caveql/data/README.md):

    python3.11 -m venv /tmp/emas
    /tmp/emas/bin/pip install emannotationschemas marshmallow-jsonschema
    /tmp/emas/bin/python tools/gen_schema_json.py

It does exactly what the schema service's ``/schema/api/v2/types_all`` route does
(emannotationschemas/blueprint_app.py): ``JSONSchema().dump(get_schema(name)())`` for every type.
"""

import json
import sys
from pathlib import Path

import emannotationschemas
from emannotationschemas import get_schema, get_types
from marshmallow_jsonschema import JSONSchema

OUT = Path(__file__).resolve().parents[1] / "caveql" / "data" / "emannotationschemas.json"


def main() -> int:
    types = {name: JSONSchema().dump(get_schema(name)()) for name in get_types()}
    doc = {"emannotationschemas": emannotationschemas.__version__ if hasattr(emannotationschemas, "__version__")
           else "unknown", "types": types}
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(types)} schema types to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
