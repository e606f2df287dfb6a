# Helpers shared by the ivfflat TAP tests (test/t/01*_ivfflat_*.pl).
#
# The tests load this with
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use IvfTest;
# so it is found wherever the t/ folder was copied (run_all.sh runs prove
# from a copy owned by the postgres OS user).
package IvfTest;

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use IPC::Run;
use IO::Uncompress::Gunzip ();
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  ivf_node
  shared_data_dir
  fashion_mnist
  write_fvecs
  read_fvecs
  read_ivecs
  vec_literal
  write_copy_file
  random_vectors
  clustered_vectors
  ivf_index_info
  ivf_check_clean
  relation_file
  read_file_bytes
  write_file_bytes
  index_scan_count
  knn_batch
  uses_index
  start_psql_script
  finish_psql_script
  poll_until
  start_pgbench
  finish_pgbench
  check_pgbench
);

# The shared data sets' folder ($IVF_DATA_DIR) if it is there and holds
# every file named, else undef: the caller then runs on data every machine
# has (fashion_mnist, or generated vectors) instead of skipping.
sub shared_data_dir
{
	my (@need) = @_;
	my $dir = $ENV{IVF_DATA_DIR};
	return undef if !defined $dir || $dir eq '' || !-r "$dir/README.md";
	for my $f (@need)
	{
		return undef unless -r "$dir/$f";
	}
	return $dir;
}

# Fashion-MNIST from Debian's dataset-fashion-mnist (test/lib/install-deps.sh
# installs it): the first $nbase training images and the first $nq test
# images, each a 784-float vector of pixel values 0..255.  Dies if the
# package is missing: it is a test dependency, not an optional extra.
my $fmnist_dir = $ENV{IVF_FASHION_MNIST_DIR} // '/usr/share/datasets/fashion-mnist';

sub _read_idx_images
{
	my ($path, $max) = @_;
	my $fh = IO::Uncompress::Gunzip->new($path)
	  or die "cannot read $path: $IO::Uncompress::Gunzip::GunzipError";
	my $hdr;
	read($fh, $hdr, 16) == 16 or die "$path: truncated IDX header";
	my ($magic, $n, $rows, $cols) = unpack('N4', $hdr);
	die "$path: not an IDX3 ubyte file (magic $magic)" unless $magic == 0x803;
	$n = $max if defined $max && $max < $n;
	my $d = $rows * $cols;
	my @out;
	for my $i (1 .. $n)
	{
		my $body;
		read($fh, $body, $d) == $d or die "$path: truncated at image $i";
		push @out, [ unpack("C$d", $body) ];
	}
	close $fh;
	return \@out;
}

sub fashion_mnist
{
	my ($nbase, $nq) = @_;
	for my $f ('train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz')
	{
		die "$fmnist_dir/$f is missing: install dataset-fashion-mnist "
		  . '(test/lib/install-deps.sh does)'
		  unless -r "$fmnist_dir/$f";
	}
	return (
		_read_idx_images("$fmnist_dir/train-images-idx3-ubyte.gz", $nbase),
		_read_idx_images("$fmnist_dir/t10k-images-idx3-ubyte.gz", $nq));
}

# Write vectors as a TEXMEX .fvecs file (for helpers that read files).
sub write_fvecs
{
	my ($path, $vecs) = @_;
	open(my $fh, '>:raw', $path) or die "cannot write $path: $!";
	for my $v (@$vecs)
	{
		print $fh pack('l<', scalar @$v), pack('f<*', @$v);
	}
	close $fh or die "cannot close $path: $!";
	return $path;
}

# Read a TEXMEX .fvecs / .ivecs file: per record a little-endian int32 d,
# then d float32 (fvecs) or int32 (ivecs).  Returns an array ref of array
# refs; $max (optional) limits the number of records read.
sub _read_vecs
{
	my ($path, $fmt, $max) = @_;
	open(my $fh, '<:raw', $path) or die "cannot open $path: $!";
	my @rows;
	my $hdr;
	while ((!defined $max || @rows < $max) && read($fh, $hdr, 4) == 4)
	{
		my $d = unpack('l<', $hdr);
		die "$path: bad dimension $d at record " . scalar(@rows)
		  if $d <= 0 || $d > 100000;
		my $body;
		my $got = read($fh, $body, 4 * $d);
		die "$path: truncated record " . scalar(@rows)
		  unless defined $got && $got == 4 * $d;
		push @rows, [ unpack("$fmt$d", $body) ];
	}
	close $fh;
	return \@rows;
}

sub read_fvecs { return _read_vecs($_[0], 'f<', $_[1]); }
sub read_ivecs { return _read_vecs($_[0], 'l<', $_[1]); }

# A started node with $conf appended to its postgresql.conf and the ivf
# extension created in its postgres database.
sub ivf_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ivf');
	return $node;
}

# A node (initialised, not started) with ivf preloaded and its GPU worker
# on the CPU backend; $extra is more postgresql.conf lines, %init options
# of init (allows_streaming => 1 for a standby).
sub gpu_worker_node
{
	my ($name, $extra, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ivf'
ivf.gpu_worker = on
ivf.gpu_backend = cpu
} . ($extra // ''));
	return $node;
}

# '[x,y,...]' with 9 significant digits, which round-trips any float32
# (non-zero integers as they are: the same number, and much faster for
# pixel data; zero by sprintf, which keeps -0).
sub vec_literal
{
	my ($v) = @_;
	return '[' . join(',', map { $_ && $_ == int($_) ? $_ : sprintf('%.9g', $_) } @$v) . ']';
}

# Write a text COPY file "id<TAB>[...]" for the vectors, ids $id0, $id0+1, ...
sub write_copy_file
{
	my ($path, $vecs, $id0) = @_;
	$id0 //= 0;
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	my $id = $id0;
	for my $v (@$vecs)
	{
		print $fh $id++, "\t", vec_literal($v), "\n";
	}
	close $fh or die "cannot close $path: $!";
	return $path;
}

# $n uniform random vectors of $dims in [-1, 1) (the caller seeds srand).
sub random_vectors
{
	my ($n, $dims) = @_;
	return [ map { [ map { 2 * rand() - 1 } 1 .. $dims ] } 1 .. $n ];
}

# $n vectors around $k random centres (noise $noise), so k-means has
# something to find (the caller seeds srand).
sub clustered_vectors
{
	my ($n, $dims, $k, $noise) = @_;
	$noise //= 0.1;
	my @centres = map { [ map { 2 * rand() - 1 } 1 .. $dims ] } 1 .. $k;
	my @out;
	for my $i (1 .. $n)
	{
		my $c = $centres[ int(rand($k)) ];
		push @out, [ map { $_ + $noise * (2 * rand() - 1) } @$c ];
	}
	return \@out;
}

# ivf_index_info() as a hash ref.
sub ivf_index_info
{
	my ($node, $db, $index) = @_;
	my @cols = qw(metric dims lists lists_requested default_nprobe seed trained_on
	  built_vectors vectors dead_slots empty_lists largest_list pages vectors_per_group);
	my $row = $node->safe_psql($db,
		'SELECT ' . join(', ', @cols) . " FROM ivf_index_info('$index')");
	my @vals = split /\|/, $row, -1;
	die "ivf_index_info('$index'): unexpected row '$row'" unless @vals == @cols;
	my %h;
	@h{@cols} = @vals;
	return \%h;
}

# ivf_check() returns no rows; the problems are shown on failure.
sub ivf_check_clean
{
	my ($node, $db, $index, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $out = $node->safe_psql($db, "SELECT * FROM ivf_check('$index')");
	is($out, '', $name // "ivf_check('$index') finds no problem")
	  or diag("ivf_check('$index') reported:\n" . substr($out, 0, 4000));
	return $out eq '';
}

# The path of a relation's main fork file (its first segment), for tests
# that patch an index on disk with the server stopped (028, 035).
sub relation_file
{
	my ($node, $db, $rel) = @_;
	return $node->data_dir . '/'
	  . $node->safe_psql($db, "SELECT pg_relation_filepath('$rel')");
}

# $len bytes of $file at $off.
sub read_file_bytes
{
	my ($file, $off, $len) = @_;
	open(my $fh, '<:raw', $file) or die "open $file: $!";
	sysseek($fh, $off, 0) or die "seek $file: $!";
	my $buf;
	sysread($fh, $buf, $len) == $len or die "short read of $file at $off";
	close($fh);
	return $buf;
}

# Overwrite $file at $off with $bytes.
sub write_file_bytes
{
	my ($file, $off, $bytes) = @_;
	open(my $fh, '+<:raw', $file) or die "open $file: $!";
	sysseek($fh, $off, 0) or die "seek $file: $!";
	syswrite($fh, $bytes) == length($bytes) or die "short write of $file at $off";
	close($fh);
	return;
}

# How many rows an index scan with nprobe = all lists returns (no LIMIT):
# every indexed vector of the table.  $op is the ordering operator.
sub index_scan_count
{
	my ($node, $db, $table, $col, $op, $q, $lists) = @_;
	return $node->safe_psql(
		$db, qq{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = $lists;
SELECT count(*) FROM (SELECT 1 FROM $table ORDER BY $col $op '$q') s});
}

# Run a batched k-NN query and parse it.  $sql must return rows
# "qid|id:dist,id:dist,..."; returns { qid => [ [id, dist], ... ] }.
sub knn_batch
{
	my ($node, $db, $sql) = @_;
	my $out = $node->safe_psql($db, $sql);
	my %res;
	for my $line (split /\n/, $out)
	{
		my ($qid, $list) = split /\|/, $line, 2;
		$res{$qid} = [ map { [ split /:/, $_, 2 ] } split /,/, ($list // '') ];
	}
	return \%res;
}

# EXPLAIN (COSTS OFF) of $sql (after the settings in $prefix) mentions an
# index scan on $index.
sub uses_index
{
	my ($node, $db, $prefix, $sql, $index) = @_;
	my $plan = $node->safe_psql($db, "$prefix\nEXPLAIN (COSTS OFF) $sql");
	return ($plan =~ /Index Scan using \Q$index\E\b/ ? 1 : 0, $plan);
}

# Start psql in the background on a script file: stdout and stderr go to
# files ($out, $out.err), so nothing needs pumping while it runs.  Returns
# the IPC::Run harness.
sub start_psql_script
{
	my ($node, $db, $script, $out, @extra) = @_;
	my @cmd = (
		'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		@extra, '-d', $node->connstr($db), '-f', $script);
	return IPC::Run::start(\@cmd, '<', \undef, '>', $out, '2>', "$out.err");
}

# Wait for a background psql; returns its exit code (the server may have
# been stopped under it: that is expected, so never fails).
sub finish_psql_script
{
	my ($h) = @_;
	eval { $h->finish; };
	return eval { $h->result(0) } // -1;
}

# Call $cond every $interval seconds until it returns true or $timeout
# seconds passed; returns the last result.
sub poll_until
{
	my ($cond, $timeout, $interval) = @_;
	$interval //= 0.05;
	my $deadline = Time::HiRes::time() + $timeout;
	while (1)
	{
		my $r = $cond->();
		return $r if $r;
		return $r if Time::HiRes::time() > $deadline;
		Time::HiRes::sleep($interval);
	}
}

# Start pgbench in the background on $node with the given scripts
# ({ name => [weight, text] }, written under $dir) and options; a timeout
# ends it if it hangs.  Returns a handle for finish_pgbench.  (Not
# $node->pgbench: that one blocks and has no timeout, so an undetected lock
# cycle would hang the whole suite.)
my $pgbench_runs = 0;

sub start_pgbench
{
	my ($node, $dir, $name, $opts, $scripts, $timeout) = @_;
	$pgbench_runs++;
	my @files;
	for my $s (sort keys %$scripts)
	{
		my ($w, $text) = @{ $scripts->{$s} };
		my $f = "$dir/${name}_$s.sql";
		open(my $fh, '>', $f) or die "$f: $!";
		print $fh $text;
		close $fh;
		push @files, '-f', "$f\@$w";
	}
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '--random-seed=' . (2013 + $pgbench_runs),
		split(/\s+/, $opts), @files, $node->connstr('postgres'));
	note "running: @cmd";
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($timeout));
	return { h => $h, out => \$out, err => \$err, name => $name, node => $node };
}

# Wait for a pgbench started by start_pgbench: (exit code, stdout, stderr);
# exit code -1 when it timed out (then the server's sessions are shown).
sub finish_pgbench
{
	my ($r) = @_;
	my $ok = eval { $r->{h}->finish; 1 };
	if (!$ok)
	{
		diag("pgbench $r->{name} did not finish: $@");
		diag($r->{node}->safe_psql('postgres',
			q{SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity WHERE backend_type = 'client backend'}));
		eval { $r->{h}->kill_kill };
		return (-1, ${ $r->{out} }, ${ $r->{err} });
	}
	return ($r->{h}->result(0), ${ $r->{out} }, ${ $r->{err} });
}

# pgbench exited 0, processed transactions, none failed, printed no error.
# Returns the number of transactions.
sub check_pgbench
{
	my ($what, $rc, $out, $err) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($rc, 0, "$what: pgbench exits 0");
	my ($n) = $out =~ /number of transactions actually processed: (\d+)/;
	ok(defined $n && $n > 0, "$what: transactions processed (" . ($n // 'none') . ')');
	like($out, qr/number of failed transactions: 0 /, "$what: no failed transaction");
	my @errlines = grep { $_ ne '' && !/^pgbench: setting random seed to/ } split /\n/, $err;
	is(join("\n", @errlines), '', "$what: nothing on stderr (no SQL error)");
	note "$what: " . join('; ', grep { /^(tps|number of trans|latency average)/ } split /\n/, $out);
	return $n;
}

1;
