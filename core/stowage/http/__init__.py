"""HTTP mechanics shared by every format: path validation, conditional and range GETs, errors, auth."""
