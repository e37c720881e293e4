#!/usr/bin/python3
"""Prints the closing `N passed, N failed[, N skipped]` line from meson testlog.json files and pytest junit xml."""
import json
import os
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        continue
    if path.endswith(".json"):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                res = r.get("result")
                if res in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif res == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    elif path.endswith(".xml"):
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for s in suites:
            for tc in s.findall("testcase"):
                if tc.find("skipped") is not None:
                    skipped += 1
                elif tc.find("failure") is not None or tc.find("error") is not None:
                    failed += 1
                else:
                    passed += 1
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
