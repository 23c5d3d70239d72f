#!/usr/bin/env python3
"""render_page.py DATA.json OUT.html: the page `heaptrail report --format html` writes, made from
src/analyze/html and a JSON document of your own (kind "report" or "diff"), by the same
substitution as the build (cmake/embed_viewer.cmake) and report_html.c: viewer.css and
viewer.js in place of their markers, then the document, every "</" written "<\\/", in place of
the data marker. For working on the page and for testing it with crafted documents."""
import argparse
import json
import os
import sys

HTML_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "analyze",
                        "html")


def render(document_text, html_dir=HTML_DIR):
    """The page for a JSON document given as text."""
    def read(name):
        with open(os.path.join(html_dir, name), encoding="utf-8") as f:
            return f.read()
    page = read("viewer.html").replace("/*@CSS@*/", read("viewer.css"), 1)
    page = page.replace("/*@JS@*/", read("viewer.js"), 1)
    cut = page.find("@DATA@")
    if cut < 0:
        raise ValueError("viewer.html has no data marker")
    return page[:cut] + document_text.replace("</", "<\\/") + page[cut + len("@DATA@"):]


def render_document(document, out_path, html_dir=HTML_DIR):
    """Writes the page for a document given as a Python object."""
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(render(json.dumps(document), html_dir))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="the JSON document")
    parser.add_argument("out", help="the HTML file to write")
    parser.add_argument("--html-dir", default=HTML_DIR, help="the viewer's sources")
    args = parser.parse_args()
    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    json.loads(text)  # a bad document fails here, not in the browser
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(render(text, args.html_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
