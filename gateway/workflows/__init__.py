"""Durable workflows: runs of named steps, each sent to the system that owns it, kept in the
gateway's database so that a run survives a crash and resumes where it stopped (the credit
workflow: credit memo in the ERP, credit note in billing, notifications).

``engine`` holds the definitions (``Workflow``, ``Step``), the ``Engine`` that runs them and
the views it answers with; ``errors`` the refusals.
"""
