package testutil

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a real S3-compatible server for tests: versitygw with its
// POSIX backend (built from tools/s3), on loopback, storing into a test
// directory, with internal IAM so that tests can add users of other
// rights. Stop and Start take it down and up again on the same port and
// data, as an outage of the store.
type S3Server struct {
	t              testing.TB
	bin, data, iam string
	Addr           string
	// Access and Secret are the root user's keys.
	Access, Secret string
	cmd            *exec.Cmd
	logf           *os.File
}

// StartS3 starts an S3 server that the test stops at its end.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	dir := t.TempDir()
	s := &S3Server{t: t, bin: Tool(t, "versitygw"), data: filepath.Join(dir, "data"), iam: filepath.Join(dir, "iam"),
		Access: "flowtape-root", Secret: "flowtape-root-secret"}
	for _, d := range []string{s.data, s.iam} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	s.logf, err = os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Stop()
		s.logf.Close()
	})
	return s
}

// Start starts the server (again) and waits until it answers.
func (s *S3Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	s.cmd = exec.Command(s.bin, "--access", s.Access, "--secret", s.Secret, "--port", s.Addr,
		"--iam-dir", s.iam, "--quiet", "posix", s.data)
	s.cmd.Stdout, s.cmd.Stderr = s.logf, s.logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.Client(s.Access, s.Secret).ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logf.Name())
			s.t.Fatalf("versitygw did not answer on %s: %v\n%s", s.Addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (an outage of the store).
func (s *S3Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill() //nolint:errcheck
	s.cmd.Wait()         //nolint:errcheck
	s.cmd = nil
}

// Client is an S3 client of the server with these keys.
func (s *S3Server) Client(access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + s.Addr),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(access, secret, ""),
	})
}

// CreateBucket creates a bucket as the root user.
func (s *S3Server) CreateBucket(name string) {
	s.t.Helper()
	if _, err := s.Client(s.Access, s.Secret).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("create bucket %s: %v", name, err)
	}
}

// URL is the gocloud.dev bucket URL of bucket/prefix on the server.
func (s *S3Server) URL(bucket, prefix string) string {
	q := url.Values{"endpoint": {"http://" + s.Addr}, "use_path_style": {"true"}, "disable_https": {"true"}, "region": {"us-east-1"}}
	return fmt.Sprintf("s3://%s/%s?%s", bucket, strings.Trim(prefix, "/"), q.Encode())
}

// Env is the environment of a client with these keys (the AWS credential
// chain's variables), isolated from the machine's own AWS configuration.
func (s *S3Server) Env(access, secret string) []string {
	dir := s.t.TempDir()
	return []string{
		"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets the root user's keys in this process's environment for the
// test (for code under test that opens the bucket in-process).
func (s *S3Server) SetEnv(t testing.TB) {
	for _, kv := range s.Env(s.Access, s.Secret) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// AddUser adds an IAM user of role "user" (it may use only the buckets it
// is granted) through the server's admin API.
func (s *S3Server) AddUser(access, secret string) {
	s.t.Helper()
	cmd := exec.Command(s.bin, "admin", "--access", s.Access, "--secret", s.Secret, "--endpoint-url", "http://"+s.Addr,
		"create-user", "--access", access, "--secret", secret, "--role", "user")
	if b, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("versitygw admin create-user: %v\n%s", err, b)
	}
}

// GrantRead lets a user read (list and get) a bucket, by a bucket policy.
func (s *S3Server) GrantRead(bucket, access string) {
	s.t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":[%q]},"Action":["s3:ListBucket","s3:GetObject","s3:GetBucketLocation"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`, access, bucket, bucket)
	if _, err := s.Client(s.Access, s.Secret).PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		s.t.Fatalf("put bucket policy: %v", err)
	}
}

// StartS3Bucket starts an S3 server with bucket, points this process's AWS
// environment at it as its root user (SetEnv), and returns it with that
// environment for child processes.
func StartS3Bucket(t testing.TB, bucket string) (*S3Server, []string) {
	t.Helper()
	s := StartS3(t)
	s.CreateBucket(bucket)
	s.SetEnv(t)
	return s, s.Env(s.Access, s.Secret)
}
