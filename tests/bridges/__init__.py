"""Interoperability with the systems the engine replaces (Perl Job::Async, Qless)."""
