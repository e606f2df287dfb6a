# Privileges of the functions that return what an ivfflat index holds
# (ivf_open_index in src/core/ivfsql.c), where a second session changes things
# while the call waits for the table's lock:
#
# (a) the attack: a role that row-level security limits to its own rows
#     got the tids and distances of hidden rows from ivf_search (from which
#     a few probe queries recover a hidden vector); now the call is refused
#     (every other such function: test/sql/ivf_security.sql).
# (b) a REVOKE of SELECT committed while ivf_search waits for the lock is
#     obeyed (privileges are checked after locking; before, the check made
#     before the wait let the call go on);
# (c) likewise ENABLE ROW LEVEL SECURITY committed during the wait;
# (d) an index dropped during the wait gives a clear error (the index is
#     looked up again after locking, as contrib/amcheck does).
#
# The waits are made deterministic by holding the lock in a first session
# until pg_locks shows the call waiting for it.  The case the re-check is
# mostly for -- the index dropped and its OID reused by an index of another
# table during the wait -- cannot be produced on demand (OIDs are not
# chosen); (d) shows the re-check at work on the part that can.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = PostgreSQL::Test::Cluster->new('rls');
$node->init;
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ivf;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE TABLE t (id int, owner name, v vector(3));
INSERT INTO t
SELECT i, CASE WHEN i <= 10 THEN 'bob' ELSE 'alice' END,
       ARRAY[i, (i * 7) % 11, (i * 3) % 5]::vector(3)
FROM generate_series(1, 20) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 1);
ALTER TABLE t OWNER TO alice;
GRANT SELECT ON t TO bob;
CREATE POLICY own ON t USING (owner = current_user);
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
my %searches = (
	vector => q{SELECT count(*) FROM ivf_search('t_idx', ARRAY['[1,1,1]'::vector], 20)},
	halfvec => q{SELECT count(*) FROM ivf_search('t_idx', ARRAY['[1,1,1]'::halfvec], 20)});

# Run $sql as bob in the background while a first session holds the lock
# taken by $hold; commit that session once bob waits for the lock.
# Returns bob's (exit code, stdout, stderr).
sub during_wait
{
	my ($name, $hold, $sql) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("BEGIN; $hold");
	my $script = "$tmp/$name.sql";
	open(my $fh, '>', $script) or die "$script: $!";
	print $fh "SET ROLE bob;\n$sql;\n";
	close($fh);
	my $out = "$tmp/$name.out";
	my $h = start_psql_script($node, 'postgres', $script, $out);
	my $waiting = $node->poll_query_until(
		'postgres', q{
SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               WHERE c.relname = 't' AND NOT l.granted)});
	ok($waiting, "($name) the call waits for the table's lock");
	$holder->query_safe('COMMIT');
	$holder->quit;
	my $rc = finish_psql_script($h);
	return ($rc, slurp_file($out), slurp_file("$out.err"));
}

for my $type ('vector', 'halfvec')
{
	my $search = $searches{$type};

	# ------------------------------------------------------------ (a)
	$node->safe_psql('postgres', 'ALTER TABLE t ENABLE ROW LEVEL SECURITY');
	is($node->safe_psql('postgres', 'SET ROLE bob; SELECT count(*) FROM t'),
		10, "($type a) bob sees his 10 rows through SELECT");
	{
		# a tid bob's SELECT does not show him
		my ($rc, $out, $err) = $node->psql(
			'postgres', qq{
SET ROLE bob;
SELECT s.tid FROM ivf_search('t_idx', ARRAY['[0,0,0]'::$type], 20) s
WHERE s.tid NOT IN (SELECT ctid FROM t) LIMIT 1;
});
		isnt($rc, 0, "($type a) ivf_search does not give bob the tids of rows hidden from him");
		like(
			$err,
			qr/ivf_search cannot apply the row-level security policies of table "t"/,
			"($type a) it says why");
		is($out, '', "($type a) and returns nothing");
	}
	is($node->safe_psql('postgres', "SET ROLE alice; $search"),
		20, "($type a) the owner (without FORCE) may call it");
	$node->safe_psql('postgres', 'ALTER TABLE t DISABLE ROW LEVEL SECURITY');
	is($node->safe_psql('postgres', "SET ROLE bob; $search"),
		20, "($type a) without row-level security bob may call it");

	# ------------------------------------------------------------ (b)
	{
		my ($rc, $out, $err) = during_wait("${type}_b",
			'LOCK TABLE t IN ACCESS EXCLUSIVE MODE; REVOKE SELECT ON t FROM bob', $search);
		isnt($rc, 0, "($type b) a REVOKE committed during the wait is obeyed");
		like($err, qr/permission denied for table t/, "($type b) with the usual message");
		is($out, '', "($type b) and nothing returned");
		$node->safe_psql('postgres', 'GRANT SELECT ON t TO bob');
	}

	# ------------------------------------------------------------ (c)
	{
		my ($rc, $out, $err) =
		  during_wait("${type}_c", 'ALTER TABLE t ENABLE ROW LEVEL SECURITY', $search);
		isnt($rc, 0, "($type c) row-level security enabled during the wait is obeyed");
		like($err, qr/ivf_search cannot apply the row-level security policies of table "t"/,
			"($type c) with its message");
		is($out, '', "($type c) and nothing returned");
		$node->safe_psql('postgres', 'ALTER TABLE t DISABLE ROW LEVEL SECURITY');
	}

	# ------------------------------------------------------------ (d)
	{
		my ($rc, $out, $err) = during_wait("${type}_d", 'DROP INDEX t_idx', $search);
		isnt($rc, 0, "($type d) an index dropped during the wait");
		like(
			$err,
			qr/index with OID \d+ was dropped or changed while ivf_search waited for its lock/,
			"($type d) gives a clear error");
		$node->safe_psql('postgres',
			'CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 1)');
	}
}

$node->stop;
done_testing();
