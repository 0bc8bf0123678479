"""The frontend: ``.net`` text to IR (Lark grammar, surface AST, elaboration, printer)."""
