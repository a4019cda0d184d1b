#!/usr/bin/env bash
# Fails when a lower module of src-tauri/src imports a higher one (see ARCHITECTURE.md,
# "Module graph"). Reads every `crate::x` path, including `use crate::{x, y::z}` groups, outside
# comments, and compares the top-level module it names with the table below. The table is
# transitive on purpose: a module may use everything below it, nothing beside or above it.
set -euo pipefail
cd "$(dirname "$0")/../src-tauri/src"

perl -e '
use strict; use warnings;
# module => modules it may use (leaves: logging, code, roles; usable by everyone)
my %allowed = (
  store   => [],
  config  => [],
  live    => [qw(config)],
  plc     => [qw(config live)],
  sim     => [qw(config live plc)],
  auth    => [qw(config store)],
  metrics => [qw(config live)],
  alarms  => [qw(config live store)],
  history => [qw(config live)],
  service => [qw(config live store)],
  messages => [qw(config store)],
  api     => [qw(alarms auth config history live messages plc service store metrics)],
  remote  => [qw(alarms api auth config history live messages plc service store metrics)],
  mqtt    => [qw(alarms api auth config live plc store metrics)],
  app     => [qw(alarms api auth config history live messages metrics mqtt plc remote service sim store)],
  desktop => [qw(alarms api app auth config history live messages metrics mqtt plc remote service sim store)],
  cli     => [qw(alarms api app auth config desktop history live messages metrics mqtt plc remote service sim store)],
);
my @leaves = qw(logging code roles);
my $bad = 0;
my @files = split /\n/, `find . -name "*.rs" | sort`;
for my $f (@files) {
  (my $p = $f) =~ s{^\./}{};
  my ($top) = $p =~ m{^([a-z_0-9]+)};
  next if $top eq "main" || $top eq "lib";
  next if grep { $_ eq $top } @leaves and !exists $allowed{$top};
  if (!exists $allowed{$top}) {
    print STDERR "check-modules: src-tauri/src/$p: module `$top` is not in the table of scripts/check-modules.sh; add it\n";
    $bad = 1; next;
  }
  my %ok = map { $_ => 1 } ($top, @leaves, @{$allowed{$top}});
  open my $fh, "<", $f or die "$f: $!";
  my $src = do { local $/; <$fh> };
  close $fh;
  my @lines = split /\n/, $src;
  my $code = join "\n", map { my $l = $_; $l =~ s{^\s*//.*$}{}; $l } @lines;
  while ($code =~ /\bcrate::/g) {
    my $pos = pos($code);
    my @names;
    if (substr($code, $pos, 1) eq "{") {
      # a group: take the first identifier of each top-level element
      my ($depth, $i, $item) = (0, $pos, "");
      for (; $i < length $code; $i++) {
        my $c = substr($code, $i, 1);
        if ($c eq "{") { $depth++; next if $depth == 1; }
        if ($c eq "}") { $depth--; last if $depth == 0; }
        if ($c eq "," && $depth == 1) { push @names, $item; $item = ""; next; }
        $item .= $c;
      }
      push @names, $item;
      @names = map { /^\s*([A-Za-z_][A-Za-z0-9_]*)/ ? $1 : () } @names;
    } elsif (substr($code, $pos) =~ /^([A-Za-z_][A-Za-z0-9_]*)/) {
      @names = ($1);
    }
    for my $n (@names) {
      next if $n eq "self";
      next if $n =~ /^[A-Z]/; # an item of lib.rs, not a module
      next if $ok{$n};
      my $line = () = substr($code, 0, $pos) =~ /\n/g;
      $line++;
      print STDERR "check-modules: src-tauri/src/$p:$line: `$top` must not use `crate::$n` (allowed: "
        . join(", ", @{$allowed{$top}} ? @{$allowed{$top}} : ("nothing")) . ", and the leaves)\n";
      $bad = 1;
    }
  }
}
exit $bad;
'
echo "module graph ok"
