"""The embedded demo cohort: synthetic slides, RNA counts and outcomes with planted structure."""

from histodistill.demo.spec import DemoPlan, DemoSpec, Programme, plan_demo

__all__ = ["DemoPlan", "DemoSpec", "Programme", "plan_demo"]
