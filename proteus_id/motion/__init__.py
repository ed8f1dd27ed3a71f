"""Optical flow behind one small interface, shared by AML (training), curation and the motion metrics."""

from .flow import DISFlow, FlowBackend, RaftFlow, flow_magnitudes, get_flow_backend

__all__ = ["FlowBackend", "DISFlow", "RaftFlow", "get_flow_backend", "flow_magnitudes"]
