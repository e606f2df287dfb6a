# Hostile files around the Faiss interop (ivffaiss.c):
#
# (a) ivf_export_faiss with a symbolic link planted at the temporary name
#     it used to use ("<path>.<backend pid>.tmp", opened O_CREAT | O_TRUNC):
#     the link's target must stay untouched and the export must still
#     write a regular file at the destination.
# (b) a destination that is a symbolic link, a FIFO or a directory is
#     refused before anything is written (rename() would replace the link
#     or FIFO; the old durable_rename() opened the destination); a regular
#     file there is replaced whole, mode 0644, no temporary file left.
# (c) WITH (centroids = '<a FIFO>') must fail at once rather than block in
#     open() (past statement_timeout, cancel and pg_terminate_backend) --
#     at CREATE INDEX and at the rebuilds that read the file again
#     (REINDEX, VACUUM FULL, TRUNCATE).  Every statement here runs under a
#     timeout, and a backend stuck on the FIFO is released by opening it
#     for writing, so the old behaviour fails the test without hanging it.
#     A character device is refused too; a symbolic link to a regular file
#     is read (pg_read_server_files reads any file the server can anyway).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use Fcntl qw(O_WRONLY O_NONBLOCK);
use POSIX qw(mkfifo);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ivf;
CREATE TABLE t (id int, v vector(3));
INSERT INTO t SELECT i, ARRAY[i % 7, i % 5, i % 3]::vector(3) FROM generate_series(1, 500) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 4);
});

my $dir = PostgreSQL::Test::Utils::tempdir;

sub write_file
{
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $text;
	close($fh);
}

sub fourcc
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or return '';
	my $buf = '';
	read($fh, $buf, 4);
	close($fh);
	return $buf;
}

# the temporary files an export left beside $base
sub leftovers
{
	my ($base) = @_;
	opendir(my $dh, $dir) or die "$dir: $!";
	my @left = grep { /^\Q$base\E\..*\.tmp$/ } readdir($dh);
	closedir($dh);
	return scalar(@left);
}

# psql under a timeout: (exit code, stdout, stderr, timed out)
sub psql_limited
{
	my ($sql, $limit) = @_;
	my $timed_out = 0;
	my ($rc, $out, $err) = $node->psql(
		'postgres', $sql,
		timeout => $limit // 60,
		timed_out => \$timed_out);
	return ($rc, $out // '', $err // '', $timed_out);
}

# ---------------------------------------------------------------- (a)
{
	my $victim = "$dir/victim.txt";
	my $dest = "$dir/planted.faiss";
	write_file($victim, "precious\n");
	# plant the link at <dest>.<pid>.tmp from the very backend that exports
	my ($rc, $out, $err) = psql_limited(qq{
SELECT pg_backend_pid();
SELECT format('ln -s %s %s.%s.tmp', '$victim', '$dest', pg_backend_pid()) AS cmd \\gset
COPY (SELECT 1) TO PROGRAM :'cmd';
SELECT ivf_export_faiss('t_idx', '$dest');
});
	my ($pid, $written) = split /\n/, $out;
	is($rc, 0, '(a) export with a link planted at the old temporary name succeeds')
	  or diag($err);
	is($written, 500, '(a) it writes every vector');
	my $after = slurp_file($victim);
	ok($after eq "precious\n", '(a) the planted link\'s target is untouched')
	  or diag('it now holds ' . length($after) . ' bytes, starting with "' . substr($after, 0, 4) . '"');
	ok(!-l $dest && -f $dest && fourcc($dest) eq 'IwFl',
		'(a) the destination is a regular Faiss file, not the planted link');
	ok(-l "$dest.$pid.tmp" && readlink("$dest.$pid.tmp") eq $victim,
		'(a) the planted link itself is left as it was');
	unlink("$dest.$pid.tmp");
	is(leftovers('planted.faiss'), 0, '(a) no temporary file is left');
}

# ---------------------------------------------------------------- (b)
{
	my $victim = "$dir/victim2.txt";
	write_file($victim, "precious\n");
	symlink($victim, "$dir/link.faiss") or die "symlink: $!";
	my ($rc, $out, $err) = psql_limited("SELECT ivf_export_faiss('t_idx', '$dir/link.faiss')");
	like(
		$err,
		qr/"\Q$dir\E\/link\.faiss" is not a regular file.*DETAIL:  It is a symbolic link/s,
		'(b) a symbolic link at the destination is refused');
	ok(-l "$dir/link.faiss" && slurp_file($victim) eq "precious\n",
		'(b) the link and its target are left as they were');

	mkfifo("$dir/fifo.faiss", 0600) or die "mkfifo: $!";
	my $timed_out;
	($rc, $out, $err, $timed_out) =
	  psql_limited("SELECT ivf_export_faiss('t_idx', '$dir/fifo.faiss')");
	ok(!$timed_out, '(b) an export to a FIFO returns');
	like($err, qr/is not a regular file.*DETAIL:  It is a FIFO/s, '(b) a FIFO at the destination is refused');
	ok(-p "$dir/fifo.faiss", '(b) the FIFO is left as it was');

	mkdir("$dir/dir.faiss") or die "mkdir: $!";
	($rc, $out, $err) = psql_limited("SELECT ivf_export_faiss('t_idx', '$dir/dir.faiss')");
	like($err, qr/is not a regular file.*DETAIL:  It is a directory/s,
		'(b) a directory at the destination is refused');
	is(leftovers('dir.faiss'), 0, '(b) and nothing is written beside it');

	write_file("$dir/regular.faiss", "old contents\n");
	($rc, $out, $err) = psql_limited("SELECT ivf_export_faiss('t_idx', '$dir/regular.faiss')");
	is($out, 500, '(b) a regular file at the destination is replaced');
	is(fourcc("$dir/regular.faiss"), 'IwFl', '(b) by the Faiss file');
	is((stat("$dir/regular.faiss"))[2] & 07777, 0644, '(b) readable by all, mode 0644');
	is(leftovers('regular.faiss'), 0, '(b) no temporary file is left');
}

# ---------------------------------------------------------------- (c)
my $fifo = "$dir/centroids.fifo";
mkfifo($fifo, 0600) or die "mkfifo: $!";

# release a backend blocked opening the FIFO for reading, if any: it then
# reads a few bytes that are no Faiss file and fails
sub release_fifo
{
	if (sysopen(my $fh, $fifo, O_WRONLY | O_NONBLOCK))
	{
		syswrite($fh, "not a Faiss file\n");
		close($fh);
		return 1;
	}
	return 0;
}

sub refused_fifo
{
	my ($what, $sql) = @_;
	my ($rc, $out, $err, $timed_out) = psql_limited("SET statement_timeout = '10s';\n$sql", 20);
	my $blocked = release_fifo();
	ok(!$timed_out && !$blocked, "(c) $what does not block on the FIFO");
	like($err, qr/"\Q$fifo\E" is not a regular file.*DETAIL:  It is a FIFO/s,
		"(c) $what refuses the FIFO");
}

refused_fifo('CREATE INDEX',
	"CREATE INDEX t_fifo ON t USING ivfflat (v) WITH (centroids = '$fifo')");

# an index built from a file, whose option then names the FIFO
$node->safe_psql('postgres',
	"CREATE INDEX t_file ON t USING ivfflat (v) WITH (centroids = '$dir/regular.faiss')");
$node->safe_psql('postgres', "ALTER INDEX t_file SET (centroids = '$fifo')");
refused_fifo('REINDEX', 'REINDEX INDEX t_file');
refused_fifo('VACUUM FULL', 'VACUUM FULL t');
refused_fifo('TRUNCATE', 'TRUNCATE t');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), 500,
	'(c) the failed rebuilds left the table as it was');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass AND pid <> pg_backend_pid()}),
	0,
	'(c) and no backend holds a lock on the table');

my ($rc, $out, $err) = psql_limited(
	"CREATE INDEX t_null ON t USING ivfflat (v) WITH (centroids = '/dev/null')");
like($err, qr/"\/dev\/null" is not a regular file.*DETAIL:  It is a character device/s,
	'(c) a device is refused');

symlink("$dir/regular.faiss", "$dir/centroids_link.faiss") or die "symlink: $!";
($rc, $out, $err) = psql_limited(qq{
CREATE INDEX t_link ON t USING ivfflat (v) WITH (centroids = '$dir/centroids_link.faiss');
SELECT lists FROM ivf_index_info('t_link');
});
is($out, 4, '(c) a symbolic link to a regular file is read') or diag($err);

$node->stop;
done_testing();
