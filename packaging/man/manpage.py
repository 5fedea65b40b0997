#!/usr/bin/env python3
"""Writes a man page (roff, section 1) for one FrameFlow executable.

    manpage.py EXECUTABLE SUPPLEMENT VERSION DATE > NAME.1

The synopsis, description, options and subcommands come from the executable
itself (`EXECUTABLE --experimental-dump-help`, swift-argument-parser's
description of every command, option, default and help text), so the page
cannot drift from `--help`. SUPPLEMENT is hand-written roff with what --help
does not say (files, environment, exit status, see also), appended as is.
"""

import json
import re
import subprocess
import sys


def esc(text):
    """Plain text as roff: backslashes, leading control characters, `code` in bold."""
    text = text.replace("\\", "\\e")
    # A word that starts with a hyphen is an option (or a negative number): a minus sign, not a hyphen.
    text = re.sub(r"(^|[\s(\[/'])-(?=[-\w])", lambda m: m.group(1) + "\\-", text)
    text = re.sub(r"(?<=\\-)-", "\\-", text)
    text = re.sub(r"`([^`]+)`", lambda m: "\\fB" + m.group(1) + "\\fR", text)
    return text


def paragraphs(text):
    """Blank-line separated paragraphs, each on its own .PP, no line starting with . or '."""
    out = []
    for i, para in enumerate(p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()):
        if i:
            out.append(".PP")
        for line in para.split("\n"):
            line = esc(line.strip())
            out.append("\\&" + line if line[:1] in (".", "'") else line)
    return out


def flag_names(arg):
    names = []
    for name in arg.get("names", []):
        dashes = "-" if name["kind"] in ("short", "longWithSingleDash") else "--"
        names.append("\\fB" + esc(dashes + name["name"]) + "\\fR")
    return ", ".join(names)


def shown(command):
    """The arguments --help shows, without --help and --version (documented once, on the top page)."""
    return [a for a in command.get("arguments", [])
            if a.get("shouldDisplay", True)
            and a.get("preferredName", {}).get("name") not in ("help", "version")]


def subcommands(command):
    """The subcommands --help lists, without ArgumentParser's own `help`."""
    return [s for s in command.get("subcommands", [])
            if s["commandName"] != "help" and s.get("shouldDisplay", True)]


def usage(path, command):
    words = ["\\fB" + esc(" ".join(path)) + "\\fR"]
    if subcommands(command):
        words.append("\\fIcommand\\fR")
    for arg in shown(command):
        value = "\\fI" + esc(arg.get("valueName", "value")) + "\\fR"
        if arg["kind"] == "positional":
            word = value
        elif arg["kind"] == "flag":
            word = flag_names(arg).split(", ")[-1]
        else:
            word = flag_names(arg).split(", ")[-1] + " " + value
        if arg.get("isRepeating"):
            word += " ..."
        words.append("[" + word + "]" if arg.get("isOptional") else word)
    return " ".join(words)


def options(command):
    out = []
    for arg in shown(command):
        value = "\\fI" + esc(arg.get("valueName", "value")) + "\\fR"
        if arg["kind"] == "positional":
            head = value
        elif arg["kind"] == "flag":
            head = flag_names(arg)
        else:
            head = flag_names(arg) + " " + value
        text = arg.get("abstract", "")
        if arg.get("discussion"):
            text += " " + arg["discussion"]
        default = arg.get("defaultValue")
        # A default the help text already explains (e.g. "number of cores") is not the build machine's value.
        if default not in (None, "") and "default:" not in text:
            text += f" (default: {default})"
        if arg.get("isRepeating") and arg["kind"] != "positional" and "repeatable" not in text:
            text += " (repeatable)"
        out += [".TP", head] + paragraphs(text or "(no description)")
    return out


def leaves(path, command):
    """Every subcommand below COMMAND, depth first (a group before its members), as (path, command)."""
    for sub in subcommands(command):
        sub_path = path + [sub["commandName"]]
        yield sub_path, sub
        yield from leaves(sub_path, sub)


def page(name, top, supplement, version, date):
    title = esc(name.upper())
    # .nh: no hyphenation (option names and paths must not be split).
    out = [f'.TH {title} 1 "{date}" "FrameFlow {version}" "FrameFlow Manual"', ".nh",
           ".SH NAME", f"{esc(name)} \\- {esc(top['abstract'].rstrip('.'))}",
           ".SH SYNOPSIS", usage([name], top)]
    if top.get("discussion"):
        out += [".SH DESCRIPTION"] + paragraphs(top["discussion"])
    out += [".SH OPTIONS"] + options(top)
    out += [".TP", "\\fB\\-\\-version\\fR", "Print the version and exit.",
            ".TP", "\\fB\\-h\\fR, \\fB\\-\\-help\\fR", "Print the help and exit."]
    subs = list(leaves([name], top))
    if subs:
        out.append(".SH COMMANDS")
        for path, command in subs:
            out += [".SS " + '"' + esc(" ".join(path[1:])) + '"', usage(path, command), ".PP"]
            out += paragraphs(command.get("abstract", ""))
            if command.get("discussion"):
                out += [".PP"] + paragraphs(command["discussion"])
            if subcommands(command):
                out += [".PP", "Commands: " + ", ".join(
                    "\\fB" + esc(s["commandName"]) + "\\fR" for s in subcommands(command)) + "."]
            else:
                opts = options(command)
                if opts:
                    out += [".RS"] + opts + [".RE"]
        out += [".PP", f"\\fB{esc(name)} help\\fR \\fIcommand\\fR ... prints a command's help."]
    out.append(supplement.rstrip("\n"))
    return "\n".join(out) + "\n"


def main():
    exe, supplement_path, version, date = sys.argv[1:5]
    name = exe.rsplit("/", 1)[-1]
    dump = json.loads(subprocess.run([exe, "--experimental-dump-help"], check=True,
                                     capture_output=True, text=True).stdout)
    with open(supplement_path, encoding="utf-8") as f:
        supplement = f.read()
    sys.stdout.write(page(name, dump["command"], supplement, version, date))


if __name__ == "__main__":
    main()
