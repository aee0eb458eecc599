"""The rankops operator: kopf handlers (thin shell) around a pure decision core."""
